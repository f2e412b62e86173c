"""``python -m f5rl.app``: the listening page (see :mod:`f5rl.app.launch`)."""

from f5rl.app.launch import main

main()
