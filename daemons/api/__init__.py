"""The order API: FastAPI on uvicorn (`uoom serve`)."""
