raise ImportError("libmylib.so: cannot open shared object file")
