"""Pipeline files shipped with rsproxy: default.yaml and examples."""
