from cstylegan.projection.cli import main

main()
