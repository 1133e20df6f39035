# The build example: a web site built from a Dockerfile on top of a base
# image packaged from a directory, both in one configuration. The base's
# ref (NAME@DIGEST) is a build argument: the reference orders the work,
# and a changed base changes the build's cache keys.
#
#   mkdir -p examples/build/rootfs/bin
#   cp "$(command -v busybox)" examples/build/rootfs/bin/
#   for a in $(busybox --list | grep -vx busybox); do ln -sf busybox examples/build/rootfs/bin/$a; done
#   berth plan  -dir examples/build   # app: digest (known after apply)
#   berth apply -dir examples/build   # builds, then runs it
#   curl http://127.0.0.1:18082/
#   berth plan  -dir examples/build   # No changes: the plan asks the build cache
#
# Edit site/index.html and plan again: the image "must be replaced", the
# apply re-runs the COPY and the steps after it, and only those.

variable "port" {
  type    = number
  default = 18082
}

image "base" {
  rootfs  = "./rootfs"
  command = ["sh"]
}

image "app" {
  build {
    context = "./site"
    args = {
      BASE    = image.base.ref
      VERSION = "1"
    }
  }
}

network "front" {}

container "web" {
  image        = image.app.ref
  stop_timeout = "1s"

  network {
    name = network.front.name
  }

  port {
    published = var.port
    target    = 8080
    host_ip   = "127.0.0.1"
  }
}

output "url" { value = "http://127.0.0.1:${var.port}/" }
