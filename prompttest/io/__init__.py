"""Infrastructure the stages share, none of it about prompts: YAML that remembers its lines
(`yamlsource`), JSON written and read a piece at a time (`jsontext`), file stamps, and
writes that are atomic (`atomic`).
"""
