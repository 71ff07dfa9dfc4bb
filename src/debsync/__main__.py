from debsync.cli import main

main()
