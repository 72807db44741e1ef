"""Operations: API keys, limits, observability and metrics around the API."""
