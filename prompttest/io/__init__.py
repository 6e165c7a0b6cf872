"""Infrastructure the stages share, none of it about prompts: YAML that remembers its lines
(`yamlsource`), JSON written and read a piece at a time (`jsontext`), file stamps, writes
that are atomic (`atomic`), the JSON path subset (`jsonpath`) and the project's own Python
functions, imported from its root (`pycode`).
"""
