"""The tools beside training, one module each: ``explain`` (one step of backpropagation in
numbers), ``gradcheck`` (finite differences), ``lr_find`` (the learning-rate range test) and
``runs`` (run directories side by side)."""
