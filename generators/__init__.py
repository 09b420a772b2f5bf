"""Generators of the SageMaker reusable components: templates, packaged artifacts and releases."""
