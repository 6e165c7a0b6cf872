"""The in-process models: `local/gemma-3-270m` (llama.cpp, `llama`) and the embedding model
`local/all-minilm-l6-v2` (NumPy, `embeddings`). Importing them imports no runtime; `build`
asks once, in a subprocess, whether the installed llama.cpp build is safe on this CPU.
"""
