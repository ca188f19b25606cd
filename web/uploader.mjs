// The ES-module face of uploader.js:
//   import { Uploader, UploadQueue } from '/uploader.mjs';
// uploader.js stays a classic script (so that the article's <script src="uploader.js">
// works); imported for its effect, it puts its API on the global object.
import './uploader.js';

export const { Uploader, UploadQueue, fingerprint, backoffDelay, hashBytes, articleFileId } =
  globalThis.ResumedUploader;
export default Uploader;
