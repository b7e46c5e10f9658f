from cstylegan.app.server import main

main()
