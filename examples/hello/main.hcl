# The hello example: a web application image packaged from a directory,
# its own network, a volume for its data, and a container publishing a port.
#
#   make demo            # builds the rootfs and berth, then runs this
#   berth plan  -dir examples/hello
#   berth apply -dir examples/hello

variable "port" {
  type        = number
  default     = 18080
  description = "host port the page is published on"
}

# The rootfs directory is made by `make demo`: the static hello binary and
# a seed file at /data that the volume is filled from on first mount.
image "web" {
  rootfs  = "./rootfs"
  command = ["/hello"]
  env     = { GREETING = "Hello from berth" }
}

network "front" {}

volume "data" {}

container "web" {
  image    = image.web.ref
  hostname = "hello"
  restart  = "always"

  network {
    name    = network.front.name
    aliases = ["web"]
  }

  port {
    published = var.port
    target    = 8080
    host_ip   = "127.0.0.1"
  }

  mount {
    volume = volume.data.name
    target = "/data"
  }

  resources {
    memory = "64M"
    cpus   = 0.5
    pids   = 64
  }

  # Run by the agent (berth agent) in the container; berth ps shows the
  # state, and restart = "always" brings the container back if it dies.
  healthcheck {
    command  = ["/hello", "-check", "http://127.0.0.1:8080/healthz"]
    interval = "2s"
    timeout  = "2s"
  }
}

output "url" {
  value = "http://127.0.0.1:${var.port}/"
}

output "container_ip" {
  value = container.web.ip_address
}
