from pathlib import Path
from typing import Literal

from alignlab.config import ExperimentConfig, unknown_model


class TokenCount(ExperimentConfig):
    kind: Literal["token_count"]
    model: str
    texts: list[str]

    def checks(self, cfg, key: str, base_dir: Path) -> list[str]:
        problems = unknown_model(cfg, f"{key}.model", self.model)
        if not any(t.strip() for t in self.texts):
            problems.append(f"{key}.texts: needs at least one non-empty text")
        return problems
