"""``python -m nnjpeg_cuda.evaluation DIR [DIR ...]``: re-render report.md and the plots from DIR/results.json."""

from .report import main

raise SystemExit(main())
