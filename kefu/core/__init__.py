"""Pure core of kefu: data types, step protocols and the pipeline. Nothing here does I/O."""
