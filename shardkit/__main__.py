from shardkit.cli import main

raise SystemExit(main())
