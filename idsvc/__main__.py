from idsvc.cli import main

main()
