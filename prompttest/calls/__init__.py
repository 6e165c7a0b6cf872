"""Calls: a Job's Calls in, an Answer (Output or error) for each out.

From the cache when it knows the request, else from the call's provider through litellm
(`providers`, the only module that imports it), N in flight (`runner`, `throttle`), with
secrets kept off disk (`secrets`). `local/` holds the models that run in this process;
`apps` answers application targets (a Python function, an HTTP service, a command).
"""
