from fat.cli import main

main()
