from distillkit.cli import main

main()
