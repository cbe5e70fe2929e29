"""Built-in pipeline stages, one per module, registered like third-party ones (see registry.py)."""

from rsproxy.pipeline.stage import Stage
from rsproxy.stages.catalog import Catalog
from rsproxy.stages.detect import Detect
from rsproxy.stages.normalize import Normalize
from rsproxy.stages.persist import Persist
from rsproxy.stages.redact import Redact

BUILTIN_STAGES: tuple[type[Stage], ...] = (Redact, Normalize, Detect, Catalog, Persist)
