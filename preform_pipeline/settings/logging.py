"""The ``logging`` settings section: the console level and an optional JSON-lines file.

```yaml
logging: {level: DEBUG, file: logs/run.jsonl}
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from preform_pipeline.settings.reading import SourceOf, resolve_path, unknown_source

__all__ = ["DEFAULT_LOG_LEVEL", "LoggingSettings", "read_logging_settings"]

DEFAULT_LOG_LEVEL: Final = "INFO"


@dataclass(frozen=True)
class LoggingSettings:
    level: str = DEFAULT_LOG_LEVEL
    file: Path | None = None


def read_logging_settings(
    raw: Mapping[str, Any], base: Path, source_of: SourceOf = unknown_source
) -> LoggingSettings:
    """The section from its raw mapping (already valid against the schema)."""
    file = raw.get("file")
    return LoggingSettings(
        level=str(raw.get("level", DEFAULT_LOG_LEVEL)).upper(),
        file=resolve_path(file, base, ["logging", "file"], source_of) if file else None,
    )
