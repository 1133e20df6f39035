network "lan" {
  subnet = "10.0.0.0/8/8"
}

output "web" {
  value      = container.web.ip
  depends_on = [network.lan]
}
