from dubkit.cli import main

raise SystemExit(main())
