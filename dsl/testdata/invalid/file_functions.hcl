container "web" {
  image   = "busybox"
  command = [file("../../load.go")]
  env = {
    A = file("missing.txt")
    B = templatefile("template.tpl", { name = "x" })
    C = file("/etc/passwd")
  }
}
