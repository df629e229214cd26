from securechat_lab.cli import main

raise SystemExit(main())
