"""The assistant: conversations and the streaming LLM chat that uses SimLab's tools."""
