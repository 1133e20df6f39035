container "web" {
  image       = images.app.ref
  working_dir = path.modul
  hostname    = var
  user        = container.web
}
