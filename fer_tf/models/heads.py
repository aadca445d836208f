class HeadSpec: pass
def build_classifier(): pass
