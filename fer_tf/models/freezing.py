def apply_freezing(): pass
def freeze_up_to(): pass
def set_trainable_scopes(): pass
def train_layer_mode(): pass
def unfreeze_last_n(): pass
