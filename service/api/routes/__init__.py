"""The API's routers: the gradients endpoints and the grading endpoints."""
