"""Analysis shared by the normalize, detect and catalog stages and the reports: URL templates,
services, SQL, GraphQL and JSON Schema inference, as plain functions and classes with no I/O."""
