"""The HTTP layer: the Falcon app, its resources, middleware and error handlers."""
