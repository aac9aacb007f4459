"""Fit the knowledge base once at set-up, so that the first start of the action server (and of a Rasa instance with
in-process actions) reads the fitted model from the cache instead of fitting it: with the labelled sets
(data/kb_labelled/) a fresh fit takes ~70 s on 2 cores (~105 s of CPU, session 32), a cached load ~3 s. The fit is stored by
actions/kb_fit_cache.py under the embedding cache (build/kb_embeddings/, KB_EMBEDDING_CACHE); nothing is fitted when
the knowledge base, its labelled sets, glossary and encoder are unchanged. A knowledge base that does not load is a
clear error here, before anything starts."""
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if __name__ == "__main__":
    # It loads the knowledge base itself; imported, it must leave the importing process's KB_PRELOAD alone.
    os.environ.setdefault("KB_PRELOAD", "0")

from actions.kb_reload import load_knowledge_base  # noqa: E402
from actions.knowledge_base import KnowledgeBaseError  # noqa: E402
from actions.settings import settings  # noqa: E402


def main() -> int:
    started = time.process_time()
    try:
        kb = load_knowledge_base(settings().kb_path)
    except KnowledgeBaseError as error:
        print(f"The knowledge base does not load: {error}", file=sys.stderr)
        return 1
    print(f"Knowledge base ready: {len(kb.active_entries)} entries, {time.process_time() - started:.0f} s of CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
