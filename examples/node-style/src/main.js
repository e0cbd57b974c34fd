import { render } from "tiny-template";

document.body.innerHTML = render("Hello from the Node-style build");
