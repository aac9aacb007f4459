from whatsapp_sandbox.app import main

main()
