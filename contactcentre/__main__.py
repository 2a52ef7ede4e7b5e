from contactcentre.cli import main

raise SystemExit(main())
