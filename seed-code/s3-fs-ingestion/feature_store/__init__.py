"""Feature group as code: feature_group.json applied to the live feature group."""
