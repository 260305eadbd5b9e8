import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

from convert.cli import main  # noqa: E402

raise SystemExit(main())
