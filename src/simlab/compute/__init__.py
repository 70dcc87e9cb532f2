"""The FastAPI side: real-time compute, streaming, health checks and the agents' door."""
