"""The dbt project end to end: dbt build, decisions, validation, BI clients, hostile inputs."""
