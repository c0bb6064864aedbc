"""SAM / CloudFormation templates: loading, intrinsics, and the `AppSpec` they become."""
