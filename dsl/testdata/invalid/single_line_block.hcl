container "web" {
  image = "x"
  port { published = 18080  target = 8080 }
  resources { memory = "64Q"  cpus = -1 }
}
