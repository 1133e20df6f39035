# The pull example: the hello web application, pulled from a registry
# instead of packaged from a directory. It needs a registry that holds the
# image; on one machine, a loopback one (berth speaks plain HTTP to
# loopback registries, and to others only when listed in
# BERTH_INSECURE_REGISTRIES):
#
#   docker run -d -p 127.0.0.1:5000:5000 registry:2    # or Debian's docker-registry
#   make demo                                           # builds and applies examples/hello
#   berth image push hello/web 127.0.0.1:5000/hello/web:1
#   berth plan  -dir examples/pull    # resolves the tag, pins it in berth.lock.hcl
#   berth apply -dir examples/pull
#
# Later pushes to the tag change nothing here until `berth lock -update`;
# the next plan then replaces the container: "image digest changed".

variable "registry" {
  type        = string
  default     = "127.0.0.1:5000"
  description = "registry holding hello/web:1"
}

variable "port" {
  type    = number
  default = 18081
}

image "web" {
  pull = "${var.registry}/hello/web:1"
}

container "web" {
  image   = image.web.ref
  restart = "always"

  network {
    name = network.front.name
  }

  port {
    published = var.port
    target    = 8080
    host_ip   = "127.0.0.1"
  }
}

network "front" {}

output "url" {
  value = "http://127.0.0.1:${var.port}/"
}
