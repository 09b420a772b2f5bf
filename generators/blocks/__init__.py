"""Building blocks a product composes: each adds its resources to a :class:`~.project.ProjectTemplate` and,
next to them, the IAM grants they need (launch role, project roles, Studio user).

- :mod:`.project` -- the SageMaker project contract (name/id parameters, tags) and the template being built;
- :mod:`.buckets` -- private, encrypted, TLS-only buckets;
- :mod:`.lambdas` -- Python Lambdas packaged by the build, with their roles and log groups;
- :mod:`.upload_trigger` -- the watch on an S3 bucket/prefix (S3 EventBridge or CloudTrail), the start Lambda,
  its dead-letter queue and retry policy, and the data-bucket custom resource;
- :mod:`.seed_code_cicd` -- the seed-code repository (CodeCommit or CodeConnections), CodeBuild and CodePipeline
  that deploy the project's SageMaker pipeline;
- :mod:`.alarms` -- the project's encrypted notification topic, its alarms (dead letters, Lambda errors,
  malformed events) and the pipeline-failure rule; the topic's KMS key lives in sm-policies.
"""
