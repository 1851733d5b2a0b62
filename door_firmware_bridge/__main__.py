from door_firmware_bridge.cli import main

main()
