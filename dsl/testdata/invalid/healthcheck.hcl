container "none" {
  image = "busybox"
  healthcheck {
    interval = "5s"
  }
}

container "both" {
  image = "busybox"
  healthcheck {
    command = ["true"]
    shell   = "true"
  }
}

container "values" {
  image = "busybox"
  healthcheck {
    command  = []
    interval = "0s"
    timeout  = "soon"
    retries  = 1.5
  }
}
