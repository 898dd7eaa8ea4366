def load_hall2020_published(d): pass
HALL2020_CLASSES=None
def hall2020_weight_files(d): pass
