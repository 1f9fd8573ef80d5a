rootProject.name = "ckls-pycharm"
