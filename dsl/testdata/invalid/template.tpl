hello ${name} on ${port}
