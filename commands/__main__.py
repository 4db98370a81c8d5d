from commands.main import app

app(prog_name="uoom")
