"""The SageMaker pipeline definition (SageMaker Python SDK v3)."""
